"""The ground segment: crew posts received, reviewed, scheduled and published to social networks.

:mod:`proxima.ground.channels` holds one adapter per kind of network (Mastodon, ActivityPub,
AT Protocol, Atom, webhooks), all behind :class:`~proxima.ground.channels.base.Channel`.
"""
