"""Local stand-ins for outside services, for the demo and the tests: started on loopback when the
packages they are built on are installed (they come with the test tools)."""
