//! SigV4 signing of the admin client's requests (service `execute-api`), for a deployment on AWS
//! where API Gateway checks IAM in front of the admin API; the credentials and region come from
//! the environment the command line runs in.

use std::time::SystemTime;

use super::ClientError;

/// The service name API Gateway's IAM authorization checks signatures for.
pub const EXECUTE_API: &str = "execute-api";

/// What SigV4 signing needs: credentials, a region and a service name.
#[derive(Clone)]
pub struct SigV4 {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    region: String,
    service: String,
}

impl std::fmt::Debug for SigV4 {
    // Never the secret or the session token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigV4")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl SigV4 {
    /// Signing for `service` in `region` with these credentials.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
        region: impl Into<String>,
        service: impl Into<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: session_token.filter(|t| !t.is_empty()),
            region: region.into(),
            service: service.into(),
        }
    }

    /// Signing for `execute-api`, with the region given (`--region`) or else `AWS_REGION` or
    /// `AWS_DEFAULT_REGION`, and the credentials of `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`
    /// and (for temporary credentials) `AWS_SESSION_TOKEN`, as `var` reads them.
    pub fn from_env(region: Option<&str>, var: impl Fn(&str) -> Option<String>) -> Result<Self, ClientError> {
        let var = |name: &str| var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let key = var("AWS_ACCESS_KEY_ID");
        let secret = var("AWS_SECRET_ACCESS_KEY");
        let (key, secret) = match (key, secret) {
            (Some(k), Some(s)) => (k, s),
            (k, s) => {
                let missing: Vec<&str> = [("AWS_ACCESS_KEY_ID", k.is_none()), ("AWS_SECRET_ACCESS_KEY", s.is_none())]
                    .into_iter()
                    .filter_map(|(name, absent)| absent.then_some(name))
                    .collect();
                return Err(ClientError::Signing {
                    code: "missing_credentials",
                    message: format!(
                        "an AWS deployment's admin API takes SigV4-signed requests, which need AWS credentials: \
                         set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary \
                         credentials); not set: {}",
                        missing.join(", ")
                    ),
                });
            }
        };
        let region = region.map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
        let Some(region) = region.or_else(|| var("AWS_REGION")).or_else(|| var("AWS_DEFAULT_REGION")) else {
            return Err(ClientError::Signing {
                code: "missing_region",
                message: "SigV4-signed requests need the deployment's AWS region: pass --region or set AWS_REGION \
                          (or AWS_DEFAULT_REGION)"
                    .to_string(),
            });
        };
        Ok(Self::new(key, secret, var("AWS_SESSION_TOKEN"), region, EXECUTE_API))
    }

    /// Signs `req` as it stands (method, URL, headers and body) as of `time`: adds
    /// `x-amz-date`, `authorization` and, with a session token, `x-amz-security-token`.
    pub fn sign(&self, req: &mut reqwest::Request, time: SystemTime) -> Result<(), ClientError> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;

        let failed = |e: &dyn std::fmt::Display| ClientError::Signing {
            code: "signing_failed",
            message: format!("cannot sign the request: {e}"),
        };
        let credentials = aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "leadflow",
        );
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| failed(&e))?
            .into();
        let headers = req
            .headers()
            .iter()
            .map(|(name, value)| value.to_str().map(|v| (name.as_str(), v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| failed(&e))?;
        let body = match req.body() {
            None => SignableBody::Bytes(&[]),
            Some(body) => match body.as_bytes() {
                Some(bytes) => SignableBody::Bytes(bytes),
                None => return Err(failed(&"a streamed body cannot be signed")),
            },
        };
        let signable = SignableRequest::new(req.method().as_str(), req.url().as_str(), headers.into_iter(), body)
            .map_err(|e| failed(&e))?;
        let (instructions, _signature) = sign(signable, &params).map_err(|e| failed(&e))?.into_parts();
        let (signed_headers, _params) = instructions.into_parts();
        for header in signed_headers {
            let name = reqwest::header::HeaderName::from_bytes(header.name().as_bytes()).map_err(|e| failed(&e))?;
            let mut value = reqwest::header::HeaderValue::from_str(header.value()).map_err(|e| failed(&e))?;
            value.set_sensitive(header.sensitive());
            req.headers_mut().insert(name, value);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::client) const KEY: &str = "AKIDEXAMPLE";
    pub(in crate::client) const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    pub(in crate::client) fn suite_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160)
    }

    pub(in crate::client) fn header<'a>(req: &'a reqwest::Request, name: &str) -> Option<&'a str> {
        req.headers().get(name).and_then(|v| v.to_str().ok())
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// AWS's SigV4 test suite, `get-vanilla`: GET / with only host and x-amz-date signed.
    #[test]
    fn signs_the_get_vanilla_vector_of_the_sigv4_test_suite() {
        let signer = SigV4::new(KEY, SECRET, None, "us-east-1", "service");
        let url = reqwest::Url::parse("https://example.amazonaws.com/").unwrap_or_else(|e| panic!("{e}"));
        let mut req = reqwest::Request::new(reqwest::Method::GET, url);
        if let Err(e) = signer.sign(&mut req, suite_time()) {
            panic!("not signed: {e}");
        }
        assert_eq!(header(&req, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            header(&req, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
        assert!(header(&req, "x-amz-security-token").is_none());
    }

    #[test]
    fn credentials_and_region_come_from_the_environment() {
        let missing = SigV4::from_env(Some("eu-west-1"), env(&[("AWS_SECRET_ACCESS_KEY", "shh-secret")])).err();
        assert_eq!(missing.as_ref().map(ClientError::code), Some("missing_credentials"));
        let message = missing.map(|e| e.message()).unwrap_or_default();
        assert!(message.contains("not set: AWS_ACCESS_KEY_ID") && !message.contains("shh-secret"), "{message}");

        let keys = [("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "shh-secret")];
        let no_region = SigV4::from_env(None, env(&keys)).err();
        assert_eq!(no_region.as_ref().map(ClientError::code), Some("missing_region"));

        let region = |flag: Option<&str>, vars: &[(&str, &str)]| {
            let all: Vec<(&str, &str)> = keys.iter().chain(vars).copied().collect();
            SigV4::from_env(flag, env(&all)).map(|s| s.region).ok()
        };
        let both = [("AWS_REGION", "eu-west-1"), ("AWS_DEFAULT_REGION", "us-east-1")];
        assert_eq!(region(Some("eu-central-1"), &both).as_deref(), Some("eu-central-1"));
        assert_eq!(region(None, &both).as_deref(), Some("eu-west-1"));
        assert_eq!(region(None, &both[1..]).as_deref(), Some("us-east-1"));

        let signer = SigV4::from_env(Some("eu-west-1"), env(&keys)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(signer.service, EXECUTE_API);
        assert!(signer.session_token.is_none());
        assert!(!format!("{signer:?}").contains("shh-secret"));
    }
}
