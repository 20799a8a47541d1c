"""The Textual UI: the only part of canarytui that imports textual."""
