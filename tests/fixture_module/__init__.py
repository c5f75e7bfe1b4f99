"""A module that exists only through its manifest: the tests add it to an app and check it shows up everywhere."""
