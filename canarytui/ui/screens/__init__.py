"""Screens: the fleet (main), dialogs, host details, history and help."""
