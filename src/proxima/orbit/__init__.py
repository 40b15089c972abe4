"""The orbit engine: elements, propagation, sun and shadow, passes, link windows (pure, vectorized)."""
