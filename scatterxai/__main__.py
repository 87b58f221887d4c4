"""``python -m scatterxai`` runs the command-line interface."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:   # Ctrl-C while the interface itself loads
    sys.stderr.write("scatterxai: interrupted\n")
    sys.exit(130)

sys.exit(main())
