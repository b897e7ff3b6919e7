from uplift.cli import main

main()
