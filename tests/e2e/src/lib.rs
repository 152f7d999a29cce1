//! End-to-end tests of the workspace, in `tests/`: they run against the test bed that
//! `testbed up` starts (see the README) and fail, saying so, when it is not up.
