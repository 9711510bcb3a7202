import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { acknowledge } from './acknowledge';

/**
 * The server access log bucket of a bucket the library creates (id `AccessLogsBucket`): S3-managed
 * encryption, TLS only, private, kept when the stack is deleted, its logs expiring after a year.
 * `of` names the bucket it logs, for the reason cdk-nag's finding on the log bucket itself is acknowledged.
 */
export function createAccessLogsBucket(scope: Construct, of: string): s3.Bucket {
  const bucket = new s3.Bucket(scope, 'AccessLogsBucket', {
    encryption: s3.BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
    removalPolicy: RemovalPolicy.RETAIN,
    lifecycleRules: [{ expiration: Duration.days(365) }],
  });
  acknowledge(bucket, ['AwsSolutions-S1'], `This is the access log bucket of the ${of}; logging it into itself would loop.`);
  return bucket;
}
