//! Nothing here: the tests in `tests/` drive the services as processes.
