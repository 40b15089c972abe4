"""The runtime: asyncio node, sockets, clock, SQLite store, application interface."""
