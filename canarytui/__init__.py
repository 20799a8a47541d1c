"""canarytui: hands-on canary deployments to servers over SSH, from the terminal."""

__version__ = "0.1.0"
