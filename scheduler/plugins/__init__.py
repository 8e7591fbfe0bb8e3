"""One module per scheduler plugin; ``registry`` assembles the default profile from them."""
