//! Core-local metrics, summed at scrape time. (in progress)
