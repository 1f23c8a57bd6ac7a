"""Pure logic of the appliance: no sockets, no frameworks, fully unit-testable."""
