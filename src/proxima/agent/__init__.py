"""The bundle protocol agent (RFC 9171 §5): dispatch, forward, deliver, expire. Pure, driven with `now`."""
