"""The web layer: one WSGI application serving the JSON API (``/api/v1``), static assets and pages.

``chachaml.web.app.create_app(client)`` builds it over a ``chachaml.client.Client``; the local
``chachaml ui`` serves it with the standard library (``chachaml.web.serve``). Nothing here is
imported by ``import chachaml``.
"""
