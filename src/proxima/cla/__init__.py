"""Convergence layers: TCPCLv4 (RFC 9174), MTCP, STCP and UDP framing. Pure protocol cores."""
