"""Engines beyond one pandas process: Apache Spark (the optional ``spark`` extra)."""
