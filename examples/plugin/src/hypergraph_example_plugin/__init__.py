"""Example third-party modules for HyperGraph (see ``modules``)."""
