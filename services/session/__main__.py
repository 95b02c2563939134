"""`python -m services.session`: the session service process."""

from services.common.server import run
from services.session.app import build

if __name__ == "__main__":
    run("session", build)
