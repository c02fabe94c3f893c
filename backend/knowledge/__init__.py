"""Knowledge base: articles agents find in the caller's words, LeiKa catalogue, search (issue 4)."""
