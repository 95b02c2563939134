"""`python -m services.router`: run one router replica."""

from services.common.server import run
from services.router.app import build

run("router", build)
