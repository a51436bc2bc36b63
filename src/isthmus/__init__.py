"""Isthmus: a self-hosted research data platform that speaks the Globus APIs."""

__version__ = "0.1.0"
