"""The dramatiq adapter: state in the SQL store, delivery by a dramatiq broker."""
