//! The extraction child for this crate's tests (civiad's `extract-document` does the same):
//! reads a request and a document on stdin, answers on stdout.

fn main() {
    std::process::exit(civia_documents::isolated::child_main());
}
