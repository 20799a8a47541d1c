"""canarytui: hands-on canary deployments to servers over SSH, from the terminal."""

import warnings

__version__ = "0.1.0"

# asyncssh still names DSA keys, which recent cryptography releases warn of at import: an
# operator would read it above every command's output, and it is nothing they can act on
# (canarytui never offers DSA: its keys and ciphers are chosen in ``ssh.connect``).
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh(\.|$)")
