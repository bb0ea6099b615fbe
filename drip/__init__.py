"""drip: drip campaigns for real-estate leads, with carrier and TCPA compliance in every send."""

__version__ = "0.1.0"
