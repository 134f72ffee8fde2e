/// Why a rotation step refused or failed. Secrets Manager shows this message in the secret's
/// rotation status, so each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// Rotation is not enabled on the secret.
    #[error("secret {0} is not enabled for rotation")]
    NotEnabled(String),
    /// The token is not a version of the secret.
    #[error("secret version {token} has no stage for rotation of secret {secret}")]
    UnknownVersion {
        /// The ClientRequestToken.
        token: String,
        /// The secret it was sent for, so that the log says which of the two secrets' rotation
        /// a stray token was aimed at.
        secret: String,
    },
    /// The token's version is neither current nor pending.
    #[error("secret version {token} is not set as AWSPENDING for rotation of secret {secret}")]
    NotPending {
        /// The ClientRequestToken.
        token: String,
        /// The secret it was sent for, so that the log says which of the two secrets' rotation
        /// a stray token was aimed at.
        secret: String,
    },
    /// The step name is not one of the four.
    #[error("invalid step parameter {0:?}")]
    InvalidStep(String),
    /// A store or domain error (unreachable store, corrupt ring, ...).
    #[error(transparent)]
    Domain(#[from] chat_auth_shared::Error),
}
