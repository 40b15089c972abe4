"""The web application: the public tracker (station, passes, alerts, timeline, photo check, questions)
and the communication team's console, served by ``proxima web`` (Starlette, server-rendered pages
with a little JavaScript, everything shipped: no tile server, no CDN)."""
