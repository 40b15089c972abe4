"""Audience analytics and social listening: samples from the networks, metrics, reports."""
