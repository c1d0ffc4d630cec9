#!/usr/bin/env bash
# The GPU workers' IAM profile (S3 access to one results prefix, nothing else), in one go.
#   examples/iam/setup.sh YOUR-BUCKET            # before the first `ray up cluster.yaml`
#   examples/iam/setup.sh YOUR-BUCKET --head     # after it: lets the head (role ray-autoscaler-v1) launch workers with it
# Needs the AWS CLI configured (profile, SSO or environment); safe to run again (existing parts are kept).
# The JSON files beside this script are templates: YOUR-BUCKET and YOUR-ACCOUNT-ID are filled in here.
set -euo pipefail
bucket="${1:?usage: $0 BUCKET [--head]}"
here="$(cd "$(dirname "$0")" && pwd)"
account="$(aws sts get-caller-identity --query Account --output text)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for f in ec2-trust.json sweetspot-gpu-worker-policy.json head-pass-worker-role.json; do
    sed -e "s/YOUR-BUCKET/$bucket/g" -e "s/YOUR-ACCOUNT-ID/$account/g" "$here/$f" > "$work/$f"
done
role=sweetspot-gpu-worker
if [ "${2:-}" = "--head" ]; then
    aws iam put-role-policy --role-name ray-autoscaler-v1 --policy-name sweetspot-pass-worker-role \
        --policy-document "file://$work/head-pass-worker-role.json"
    echo "ray-autoscaler-v1 may now launch workers with $role"
    exit 0
fi
aws iam get-role --role-name "$role" >/dev/null 2>&1 ||
    aws iam create-role --role-name "$role" --assume-role-policy-document "file://$work/ec2-trust.json" >/dev/null
aws iam put-role-policy --role-name "$role" --policy-name sweetspot-results \
    --policy-document "file://$work/sweetspot-gpu-worker-policy.json"
aws iam get-instance-profile --instance-profile-name "$role" >/dev/null 2>&1 ||
    aws iam create-instance-profile --instance-profile-name "$role" >/dev/null
aws iam get-instance-profile --instance-profile-name "$role" --query 'InstanceProfile.Roles[].RoleName' --output text |
    grep -qw "$role" || aws iam add-role-to-instance-profile --instance-profile-name "$role" --role-name "$role"
echo "instance profile $role: S3 access to s3://$bucket/sweetspot/ (next: ray up cluster.yaml, then $0 $bucket --head)"
