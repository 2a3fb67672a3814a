//! Why a request is refused, with what OpenAI's error object needs.

/// The HTTP status class of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 400.
    BadRequest,
    /// 404.
    NotFound,
}

impl Status {
    pub fn as_u16(self) -> u16 {
        match self {
            Status::BadRequest => 400,
            Status::NotFound => 404,
        }
    }
}

/// A refused request. `Display` is the message shown to the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// 400 `invalid_value`: a value out of range or of the wrong shape.
    #[error("{message}")]
    Invalid { param: String, message: String },
    /// 400 `unsupported_parameter`: an OpenAI feature the box does not offer.
    #[error("{message}")]
    Unsupported { param: String, message: String },
    /// 400 `prompt_too_long`: over the guard's prompt limit.
    #[error("{message}")]
    PromptTooLong { param: String, message: String },
    /// 404 `model_not_found` (`param` is `model`).
    #[error("The model `{asked}` does not exist on this box; it serves `{served}`.")]
    ModelNotFound { asked: String, served: String },
}

impl Error {
    pub(crate) fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            param: param.into(),
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(param: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Unsupported {
            param: param.into(),
            message: message.into(),
        }
    }

    pub fn model_not_found(asked: &str, served: &str) -> Self {
        Error::ModelNotFound {
            asked: asked.into(),
            served: served.into(),
        }
    }

    pub fn status(&self) -> Status {
        match self {
            Error::ModelNotFound { .. } => Status::NotFound,
            _ => Status::BadRequest,
        }
    }

    /// OpenAI's `type`.
    pub fn kind(&self) -> &'static str {
        "invalid_request_error"
    }

    /// OpenAI's `code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_value",
            Error::Unsupported { .. } => "unsupported_parameter",
            Error::PromptTooLong { .. } => "prompt_too_long",
            Error::ModelNotFound { .. } => "model_not_found",
        }
    }

    /// OpenAI's `param`: the field at fault.
    pub fn param(&self) -> &str {
        match self {
            Error::Invalid { param, .. }
            | Error::Unsupported { param, .. }
            | Error::PromptTooLong { param, .. } => param,
            Error::ModelNotFound { .. } => "model",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        let e = Error::model_not_found("gpt-4", "mistral");
        assert_eq!(e.status().as_u16(), 404);
        assert_eq!(e.code(), "model_not_found");
        assert_eq!(e.param(), "model");
        assert_eq!(
            e.to_string(),
            "The model `gpt-4` does not exist on this box; it serves `mistral`."
        );
        let e = Error::unsupported("n", "x");
        assert_eq!(
            (e.status(), e.code(), e.param()),
            (Status::BadRequest, "unsupported_parameter", "n")
        );
        assert_eq!(Error::invalid("stop", "y").code(), "invalid_value");
    }
}
