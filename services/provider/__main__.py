"""`python -m services.provider`: the Provider service process."""

from services.common.server import run
from services.provider.app import build

run("provider", build)
