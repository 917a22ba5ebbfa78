"""Web service: the one ASGI app of `ohbot serve` (app.py) and the routes features add to it."""
