"""`python -m services.tool`: run one tool service replica."""

from services.common.server import run
from services.tool.app import build

run("tool", build)
