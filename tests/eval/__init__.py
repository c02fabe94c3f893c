"""`make eval`: search quality on caller questions (see __main__)."""
