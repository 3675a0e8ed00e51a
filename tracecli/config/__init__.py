"""Settings: flags, environment, config files, ~/.netrc and login, and where files live."""
