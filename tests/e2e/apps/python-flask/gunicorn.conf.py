"""gunicorn's settings: loopback only, on the port siteops gives the component."""

import os

bind = f"127.0.0.1:{os.environ['PORT']}"
workers = 2
