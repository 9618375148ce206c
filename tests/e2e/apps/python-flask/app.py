"""A real Python web app for siteops' end-to-end tests: Flask served by gunicorn.

It answers with the site's name and what its own PostgreSQL database says
(psycopg, DATABASE_URL from the site's .env), so a page proves that the
dependencies installed and the database is the site's own.
"""

import os

import psycopg
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        user, database = conn.execute("SELECT current_user, current_database()").fetchone()
    return f"python {os.environ['SITE_NAME']}: flask on gunicorn, database {database} as {user}\n"
