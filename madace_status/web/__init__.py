"""The HTTP side: dashboard pages and the JSON API."""

__all__: "list[str]" = []  # a package of modules: serve imports web.app and web.http
