"""Publishing channels: one adapter per kind of network, behind one interface (:mod:`.base`)."""
