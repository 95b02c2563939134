"""`python -m services.investigation`: run one investigation service replica."""

from services.common.server import run
from services.investigation.app import build

run("investigation", build)
