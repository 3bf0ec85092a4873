"""Models arrive with this app's issue; the app is installed from the start so migrations chain cleanly."""
