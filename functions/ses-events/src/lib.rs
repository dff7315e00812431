//! SES events: bounces, complaints, deliveries, opens and clicks from the configuration set.
