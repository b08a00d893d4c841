"""One module per `lms` subcommand. Modules import only click at the top so `lms --help` stays fast."""
