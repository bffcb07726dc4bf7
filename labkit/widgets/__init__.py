"""Front-end widgets for notebooks: pictures and panels drawn from the lab's real state."""
