"""`navale dashboard`: a live monitoring page on 127.0.0.1 behind a token (docs/dashboard.md).

- :mod:`.snapshot`: what it shows, read from the journals with read-only connections;
- :mod:`.app`: the FastAPI app (page, server-sent events, acknowledgement, emergency stop, ``/metrics``);
- :mod:`.server`: the token and uvicorn on 127.0.0.1.
"""
