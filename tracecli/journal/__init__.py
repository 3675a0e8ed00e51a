"""What a run leaves for the next: the resume journal, the Freeplay id ledger, the rejected file."""
