//! The org's user pool (Amazon Cognito): where members' identities and passwords live. The
//! API only invites (AdminCreateUser: the pool emails the temporary password) and disables
//! users; the operator tool also sets passwords and signs in. Locally the same calls go to
//! the Cognito-API emulator (`AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`).

use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType, MessageActionType};
use aws_sdk_cognitoidentityprovider::Client;

pub const MEMBER_POOL_ID_ENV: &str = "MEMBER_POOL_ID";
pub const MEMBER_POOL_CLIENT_ID_ENV: &str = "MEMBER_POOL_CLIENT_ID";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("a user with this email already exists in the pool")]
    Exists,
    #[error("no such user")]
    NoSuchUser,
    /// The pool refused the input (an email it does not take, a password its policy refuses).
    #[error("{0}")]
    Refused(String),
    #[error("wrong email or password")]
    NotAuthorized,
    /// The pool refuses a disabled user whatever the password: a deactivated member.
    #[error("this member is deactivated: the pool no longer signs them in")]
    Disabled,
    /// Throttled, down or unreachable: the caller may retry.
    #[error("user pool unavailable: {0}")]
    Unavailable(String),
    #[error("user pool error: {0}")]
    Other(String),
}

fn classify<E: ProvideErrorMetadata, R>(operation: &str, err: &SdkError<E, R>) -> PoolError {
    match err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("unknown");
            match code {
                "UsernameExistsException" => PoolError::Exists,
                "UserNotFoundException" => PoolError::NoSuchUser,
                "NotAuthorizedException"
                    if service
                        .err()
                        .message()
                        .is_some_and(|m| m.to_ascii_lowercase().contains("disabled")) =>
                {
                    PoolError::Disabled
                }
                "NotAuthorizedException" => PoolError::NotAuthorized,
                "InvalidParameterException" | "InvalidPasswordException" => PoolError::Refused(
                    service
                        .err()
                        .message()
                        .unwrap_or("the user pool refused the request")
                        .to_owned(),
                ),
                "TooManyRequestsException"
                | "InternalErrorException"
                | "LimitExceededException" => {
                    PoolError::Unavailable(format!("{operation}: {code}"))
                }
                _ => PoolError::Other(format!("{operation}: {code}")),
            }
        }
        _ => PoolError::Unavailable(format!("{operation}: no usable response")),
    }
}

/// A signed-in member's tokens.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub id_token: Option<String>,
    pub expires_in: i32,
}

#[derive(Clone, Debug)]
pub struct MemberPool {
    client: Client,
    pool_id: String,
}

impl MemberPool {
    pub fn new(client: Client, pool_id: impl Into<String>) -> Self {
        Self {
            client,
            pool_id: pool_id.into(),
        }
    }

    /// The same pool, its calls signed as `access_key_id` (`App::signing_as`).
    pub fn signing_as(&self, access_key_id: &str) -> Self {
        Self {
            client: crate::sdk::cognito_signing_as(&self.client, access_key_id),
            pool_id: self.pool_id.clone(),
        }
    }

    /// The pool named by `MEMBER_POOL_ID`, if set, through a client built from Lambda's
    /// variables.
    pub fn from_env(settings: &crate::sdk::LambdaSettings) -> Option<Self> {
        let pool_id = std::env::var(MEMBER_POOL_ID_ENV)
            .ok()
            .filter(|v| !v.is_empty())?;
        Some(Self::new(crate::sdk::cognito(settings), pool_id))
    }

    /// Creates the pool user for `email` and returns its `sub`. Without `temporary_password`
    /// the pool makes one and emails it (the member sets their own at first sign-in); with
    /// one (the operator tool), nothing is sent.
    pub async fn create_user(
        &self,
        email: &str,
        temporary_password: Option<&str>,
    ) -> Result<String, PoolError> {
        let mut request = self
            .client
            .admin_create_user()
            .user_pool_id(&self.pool_id)
            .username(email)
            .user_attributes(attribute("email", email))
            .user_attributes(attribute("email_verified", "true"))
            .desired_delivery_mediums(
                aws_sdk_cognitoidentityprovider::types::DeliveryMediumType::Email,
            );
        if let Some(password) = temporary_password {
            request = request
                .temporary_password(password)
                .message_action(MessageActionType::Suppress);
        }
        let output = request
            .send()
            .await
            .map_err(|e| classify("AdminCreateUser", &e))?;
        output
            .user()
            .and_then(|user| {
                user.attributes()
                    .iter()
                    .find(|a| a.name() == "sub")
                    .and_then(|a| a.value())
            })
            .map(str::to_owned)
            .ok_or_else(|| PoolError::Other("AdminCreateUser: no sub".into()))
    }

    /// The `sub` of the user signed in as `email`, if there is one.
    pub async fn sub_of(&self, email: &str) -> Result<Option<String>, PoolError> {
        match self
            .client
            .admin_get_user()
            .user_pool_id(&self.pool_id)
            .username(email)
            .send()
            .await
        {
            Ok(output) => Ok(output
                .user_attributes()
                .iter()
                .find(|a| a.name() == "sub")
                .and_then(|a| a.value())
                .map(str::to_owned)),
            Err(e) => match classify("AdminGetUser", &e) {
                PoolError::NoSuchUser => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Sets a permanent password (the operator tool; members otherwise set their own).
    pub async fn set_password(&self, email: &str, password: &str) -> Result<(), PoolError> {
        self.client
            .admin_set_user_password()
            .user_pool_id(&self.pool_id)
            .username(email)
            .password(password)
            .permanent(true)
            .send()
            .await
            .map_err(|e| classify("AdminSetUserPassword", &e))?;
        Ok(())
    }

    /// Removes the user (the operator tool undoing a member it could not finish making).
    pub async fn delete_user(&self, email: &str) -> Result<(), PoolError> {
        self.client
            .admin_delete_user()
            .user_pool_id(&self.pool_id)
            .username(email)
            .send()
            .await
            .map_err(|e| classify("AdminDeleteUser", &e))?;
        Ok(())
    }

    /// Stops the user signing in (a deactivated member). Tokens already issued still pass
    /// the authorizer until they expire, but the member record refuses them.
    pub async fn disable(&self, email: &str) -> Result<(), PoolError> {
        match self
            .client
            .admin_disable_user()
            .user_pool_id(&self.pool_id)
            .username(email)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match classify("AdminDisableUser", &e) {
                PoolError::NoSuchUser => Ok(()),
                other => Err(other),
            },
        }
    }
}

fn attribute(name: &str, value: &str) -> AttributeType {
    AttributeType::builder()
        .name(name)
        .value(value)
        .build()
        .expect("name is set")
}

/// Signs in with email and password (InitiateAuth, USER_PASSWORD_AUTH) through the app
/// client, as the page does.
pub async fn sign_in(
    client: &Client,
    client_id: &str,
    email: &str,
    password: &str,
) -> Result<Tokens, PoolError> {
    let output = client
        .initiate_auth()
        .client_id(client_id)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", email)
        .auth_parameters("PASSWORD", password)
        .send()
        .await
        .map_err(|e| classify("InitiateAuth", &e))?;
    if let Some(challenge) = output.challenge_name() {
        return Err(PoolError::Refused(format!(
            "the pool asks for {challenge} first (a new password): set one with `icadmin members add --password`"
        )));
    }
    let result = output
        .authentication_result()
        .ok_or_else(|| PoolError::Other("InitiateAuth: no tokens".into()))?;
    Ok(Tokens {
        access_token: result
            .access_token()
            .ok_or_else(|| PoolError::Other("InitiateAuth: no access token".into()))?
            .to_owned(),
        id_token: result.id_token().map(str::to_owned),
        expires_in: result.expires_in(),
    })
}
