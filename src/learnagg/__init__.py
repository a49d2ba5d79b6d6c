"""learnagg: learner activity and score aggregation."""

__version__ = "0.1.0"
