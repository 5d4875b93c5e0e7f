//! The compliance lifecycle: which KYC and AML moves are legal. Only the back office moves a
//! customer (icadmin today); the integration API only reads the result.

use crate::customers::model::{AmlCategory, AmlResult, AmlStatus, Customer, KycStatus};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IllegalMove {
    #[error("KYC status cannot move from {from} to {to}; allowed from {from}: {allowed}")]
    Kyc {
        from: KycStatus,
        to: KycStatus,
        allowed: String,
    },
    #[error("AML status cannot move from {from} to {to}; allowed from {from}: {allowed}")]
    Aml {
        from: AmlStatus,
        to: AmlStatus,
        allowed: String,
    },
    #[error("{0} needs at least one category (PEP, SANCTIONS, ADVERSE_MEDIA, WATCHLIST)")]
    CategoriesRequired(AmlStatus),
    #[error("{0} takes no categories")]
    CategoriesNotAllowed(AmlStatus),
}

pub fn kyc_targets(from: KycStatus) -> &'static [KycStatus] {
    use KycStatus::*;
    match from {
        NotStarted => &[InProgress],
        InProgress => &[NeedsReview, Verified, Rejected],
        NeedsReview => &[Verified, Rejected],
        Rejected => &[InProgress],
        Verified => &[InProgress],
    }
}

pub fn aml_targets(from: AmlStatus) -> &'static [AmlStatus] {
    use AmlStatus::*;
    match from {
        NotScreened => &[Pending],
        Pending => &[Clear, PotentialMatch],
        PotentialMatch => &[Clear, ConfirmedMatch, Pending],
        Clear | ConfirmedMatch => &[Pending],
    }
}

fn names<T: std::fmt::Display>(list: &[T]) -> String {
    list.iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Moves KYC status; bumps `updated_at` so pollers see the change.
pub fn move_kyc(customer: &mut Customer, to: KycStatus, now: Timestamp) -> Result<(), IllegalMove> {
    let from = customer.kyc_status;
    if !kyc_targets(from).contains(&to) {
        return Err(IllegalMove::Kyc {
            from,
            to,
            allowed: names(kyc_targets(from)),
        });
    }
    customer.kyc_status = to;
    customer.updated_at = now;
    Ok(())
}

/// Moves AML status. A match carries categories (a confirmed match keeps the potential
/// match's categories unless new ones are given); CLEAR and PENDING carry none.
pub fn move_aml(
    customer: &mut Customer,
    to: AmlStatus,
    categories: &[AmlCategory],
    now: Timestamp,
) -> Result<(), IllegalMove> {
    let from = customer.aml.status;
    if !aml_targets(from).contains(&to) {
        return Err(IllegalMove::Aml {
            from,
            to,
            allowed: names(aml_targets(from)),
        });
    }
    let mut categories: Vec<AmlCategory> = categories.to_vec();
    categories.sort();
    categories.dedup();
    let categories = match to {
        AmlStatus::PotentialMatch if categories.is_empty() => {
            return Err(IllegalMove::CategoriesRequired(to))
        }
        AmlStatus::ConfirmedMatch if categories.is_empty() => customer.aml.categories.clone(),
        AmlStatus::PotentialMatch | AmlStatus::ConfirmedMatch => categories,
        _ if !categories.is_empty() => return Err(IllegalMove::CategoriesNotAllowed(to)),
        _ => Vec::new(),
    };
    let screened = matches!(
        to,
        AmlStatus::Clear | AmlStatus::PotentialMatch | AmlStatus::ConfirmedMatch
    );
    customer.aml = AmlResult {
        status: to,
        categories,
        screened_at: if screened {
            Some(now)
        } else {
            customer.aml.screened_at
        },
    };
    customer.updated_at = now;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::model::{AddedVia, CustomerType};
    use chrono::Duration;

    fn customer() -> Customer {
        let t = crate::time::parse("2026-01-01T00:00:00Z").unwrap();
        Customer {
            id: uuid::Uuid::now_v7(),
            external_id: None,
            customer_type: CustomerType::Individual,
            full_name: "Jane".into(),
            email: None,
            phone: None,
            date_of_birth: None,
            country: None,
            metadata: Default::default(),
            kyc_status: KycStatus::NotStarted,
            aml: AmlResult {
                status: AmlStatus::NotScreened,
                categories: vec![],
                screened_at: None,
            },
            added_via: AddedVia::Integration,
            created_at: t,
            updated_at: t,
        }
    }

    const ALL_KYC: [KycStatus; 5] = [
        KycStatus::NotStarted,
        KycStatus::InProgress,
        KycStatus::NeedsReview,
        KycStatus::Verified,
        KycStatus::Rejected,
    ];
    const ALL_AML: [AmlStatus; 5] = [
        AmlStatus::NotScreened,
        AmlStatus::Pending,
        AmlStatus::Clear,
        AmlStatus::PotentialMatch,
        AmlStatus::ConfirmedMatch,
    ];

    #[test]
    fn kyc_moves_follow_the_contract_exactly() {
        use KycStatus::*;
        let legal = [
            (NotStarted, InProgress),
            (InProgress, NeedsReview),
            (InProgress, Verified),
            (InProgress, Rejected),
            (NeedsReview, Verified),
            (NeedsReview, Rejected),
            (Rejected, InProgress),
            (Verified, InProgress),
        ];
        for from in ALL_KYC {
            for to in ALL_KYC {
                let mut c = customer();
                c.kyc_status = from;
                let later = c.updated_at + Duration::seconds(5);
                let result = move_kyc(&mut c, to, later);
                if legal.contains(&(from, to)) {
                    assert_eq!(result, Ok(()), "{from:?} -> {to:?}");
                    assert_eq!((c.kyc_status, c.updated_at), (to, later));
                } else {
                    assert!(result.is_err(), "{from:?} -> {to:?} must be refused");
                    assert_eq!(c.kyc_status, from, "a refused move changes nothing");
                }
            }
        }
    }

    #[test]
    fn aml_moves_follow_the_contract_exactly() {
        use AmlStatus::*;
        let legal = [
            (NotScreened, Pending),
            (Pending, Clear),
            (Pending, PotentialMatch),
            (PotentialMatch, Clear),
            (PotentialMatch, ConfirmedMatch),
            (Clear, Pending),
            (PotentialMatch, Pending),
            (ConfirmedMatch, Pending),
        ];
        for from in ALL_AML {
            for to in ALL_AML {
                let mut c = customer();
                c.aml.status = from;
                if matches!(from, PotentialMatch | ConfirmedMatch) {
                    c.aml.categories = vec![AmlCategory::Pep];
                }
                let cats: &[AmlCategory] = if to == PotentialMatch {
                    &[AmlCategory::Sanctions]
                } else {
                    &[]
                };
                let later = c.updated_at + Duration::seconds(1);
                let result = move_aml(&mut c, to, cats, later);
                assert_eq!(
                    result.is_ok(),
                    legal.contains(&(from, to)),
                    "{from:?} -> {to:?}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn categories_go_with_matches_only() {
        let mut c = customer();
        let t = c.updated_at;
        move_aml(&mut c, AmlStatus::Pending, &[], t).unwrap();
        assert_eq!(
            move_aml(&mut c, AmlStatus::PotentialMatch, &[], t),
            Err(IllegalMove::CategoriesRequired(AmlStatus::PotentialMatch))
        );
        assert!(matches!(
            move_aml(&mut c, AmlStatus::Clear, &[AmlCategory::Pep], t),
            Err(IllegalMove::CategoriesNotAllowed(_))
        ));
        move_aml(
            &mut c,
            AmlStatus::PotentialMatch,
            &[AmlCategory::Watchlist, AmlCategory::Pep, AmlCategory::Pep],
            t,
        )
        .unwrap();
        assert_eq!(c.aml.categories, [AmlCategory::Pep, AmlCategory::Watchlist]);
        assert_eq!(c.aml.screened_at, Some(t));
        move_aml(&mut c, AmlStatus::ConfirmedMatch, &[], t).unwrap();
        assert_eq!(
            c.aml.categories,
            [AmlCategory::Pep, AmlCategory::Watchlist],
            "kept from the potential match"
        );
        move_aml(&mut c, AmlStatus::Pending, &[], t).unwrap();
        assert!(c.aml.categories.is_empty());
        move_aml(&mut c, AmlStatus::Clear, &[], t).unwrap();
        assert!(c.aml.categories.is_empty());
    }

    #[test]
    fn refusals_say_what_is_allowed() {
        let mut c = customer();
        let at = c.updated_at;
        let err = move_kyc(&mut c, KycStatus::Verified, at).unwrap_err();
        assert_eq!(err.to_string(), "KYC status cannot move from NOT_STARTED to VERIFIED; allowed from NOT_STARTED: IN_PROGRESS");
    }
}
