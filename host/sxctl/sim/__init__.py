"""The simulator: virtual boards on a virtual bus, driven by plant models."""
